"""Hosted-API backends: the shared job shape (`client`), Replicate and fal."""
