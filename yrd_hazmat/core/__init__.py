"""The pure core: what the worker computes, with no Kafka, Redis or clock inside."""
