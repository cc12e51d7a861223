"""ddblake's AWS infrastructure: a CDK v2 app in Python, kept apart from the runtime package.

Nothing in ``src/ddblake`` imports this package or aws_cdk; this package reads ddblake's sources
only to stage them as assets (the transform Lambda bundle, the apply image, the Glue job).
"""
