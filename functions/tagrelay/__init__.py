"""tagrelay: promote signed, SHA-tagged images from ECR into a GitOps repository."""
