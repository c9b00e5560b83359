"""LDcGAN face aging (thesis ch. 4): the landmark predictor G_L (``landmarks.py``, pre-trained, then
frozen) and the generator/discriminator with their losses (``ldcgan.py``)."""
