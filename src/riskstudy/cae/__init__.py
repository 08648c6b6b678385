"""Conditional autoencoder section (Gu, Kelly, Xiu 2021): characteristics, CA0-CA3, IPCA and PCA baselines, scores."""
