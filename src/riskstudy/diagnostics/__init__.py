"""Factor diagnostics section (issue 14): measures of any model's exposures (``measures``) and transforms
that wrap any factor model (``transforms``: Gram-Schmidt orthogonalisation)."""
