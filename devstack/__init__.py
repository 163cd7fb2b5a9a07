"""The local stack: real or faithful stand-ins for ECR, DynamoDB, GitHub and Argo CD.

Used by the tests and by ``make demo``. Every server listens on a free loopback port and is stopped
by its process id. Nothing here is deployed to AWS.
"""
