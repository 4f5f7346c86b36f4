"""The pure core: the artifact format and everything that scores with it, in plain Python.

Schema, data IO, profiles, personal data, snapshots, feature code, the model store, the
manifest, verification and signing, row validation, the one scoring path, and the helpers that
write files and HTML. It imports no IPython, ipywidgets, papermill, nbformat, nbconvert, MLflow
or matplotlib (``lint-imports`` checks it), so every face of nbprod builds on it.
"""
