"""``tierup doctor``: what only the account can tell, checked before and after a deploy.

Each check returns ``Finding``s (ok / problem with a fix / unchecked with the reason). The checks
take their clients as arguments (boto3 clients, the Modal port), so tests drive them with moto
and botocore's Stubber; ``tierup/commands/doctor.py`` builds the real clients and prints.
"""
