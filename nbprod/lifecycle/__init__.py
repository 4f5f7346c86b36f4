"""A model's life after its first artifact: retraining from its stored training notebook,
champion versus challenger on the same data, and the reviewers' feedback merged into training
data. Promotion itself is the registry's (:mod:`nbprod.tracking.registry`).
"""
