"""The CDK app that deploys tierup to AWS: ``app.py`` is the entry point, ``stack.py`` composes and
grants, and each other module is one construct (or the pure data it is built from).

Nothing in ``functions/`` imports this package; this package never calls AWS at synth time.
"""
