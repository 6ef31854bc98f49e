"""Adapters to Apache Kafka: the local broker, client configuration, admin, producing and consuming."""
