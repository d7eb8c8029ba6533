__version__ = "0.2.0"
# Version of the on-disk artefact format (config.json + model.safetensors).
ARTEFACT_FORMAT_VERSION = 1
