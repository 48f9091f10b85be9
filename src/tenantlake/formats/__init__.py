"""Reading what AWS lands: export manifests, DynamoDB JSON and ION data files, stream records."""
