"""salseg: a Lightning + Hydra framework for segmentation and saliency research. Importing it does
nothing; the entry points register what the configs need (:func:`src.config.registration.register`)."""
