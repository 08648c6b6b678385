"""Stage entry points of the study: runs that train networks and write results.

- :mod:`riskstudy.studies.ablations` -- one Deep Risk Model ablation run (a DVC stage).
- :mod:`riskstudy.studies.planted` -- the planted-factor check on a synthetic market.
"""
