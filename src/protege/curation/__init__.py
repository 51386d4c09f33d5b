"""Curation: which demonstration steps a policy learns from and how much (masks, weights, robust
reductions), plus the data-quality metrics they can be built on."""
