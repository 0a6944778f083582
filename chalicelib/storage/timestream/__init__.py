"""Amazon Timestream for LiveAnalytics backend."""
