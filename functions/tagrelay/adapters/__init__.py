"""One module per outside system: registry, signatures, github, argocd, store (DynamoDB), secrets."""
