"""The tagrelay CDK app: one stack, built from the same configuration file as the functions.

`infra.stack.TagrelayStack` composes the constructs; `infra.cdk_app.build_app` adds cdk-nag and is what
`app.py` (and the CDK tests) call. docs/deploy.md explains how to deploy it.
"""
