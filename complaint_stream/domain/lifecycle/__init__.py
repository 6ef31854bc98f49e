"""The lifecycle worker's pure domain: the case record, transitions, customer messages."""
