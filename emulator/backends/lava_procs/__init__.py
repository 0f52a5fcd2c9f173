"""Lava processes of neurodeploy's own, one per module.

Lava finds a process's models by importing every module in the process's directory, so this package
holds nothing but process modules (the backends next to it are no Lava models).
"""
