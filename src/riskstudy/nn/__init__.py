"""Neural networks of the study and the one training loop they share.

- :mod:`riskstudy.nn.loop` -- the generic training loop (seeding, checkpoints, run identity,
  early stopping, logging): every network plugs in as a :class:`~riskstudy.nn.loop.Task`.
- :mod:`riskstudy.nn.drm` -- the Deep Risk Model network (GAT + GRU heads).
- :mod:`riskstudy.nn.losses` -- its multi-horizon R^2 loss and collinearity penalty.
- :mod:`riskstudy.nn.drm_train` -- its task, steps, evaluation and prediction.
"""
