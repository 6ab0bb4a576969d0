"""DynamoDB adapters: table creation from ``functions.core.tables`` and one store per concern."""
