"""Next-layer expert predictors (a registry) and the routing traces they are fitted and
evaluated on.
"""
