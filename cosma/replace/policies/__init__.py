"""The shipped replacement policies, one module each; every module here registers its policy with
:func:`cosma.replace.registry.replacement_policy` and is found by the registry with :mod:`pkgutil`."""
