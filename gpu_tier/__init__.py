"""The GPU tiers on Modal (``serverless-gpu`` and ``reserved``): ``modal deploy gpu_tier/app.py``."""
