"""What runs inside AWS Lambda (and inside ``tierup dev``). Never imports aws_cdk or the CLI."""
