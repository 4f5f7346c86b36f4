"""Monitoring a scored batch: drift, input and output checks, performance once labels arrive,
and the retrain signal.

Everything here compares a batch with the reference recorded at packaging (binned, mergeable
profiles and metric values), so scoring never re-reads the training data.
"""
