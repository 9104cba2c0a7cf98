"""Family accounts (亲情账户): binding rules and proxy certification of bound relatives."""

from liveness.family.accounts import Binding, FamilyAccounts, ProxyRefusal
from liveness.family.proxy import ProxyCertifier, ProxyOutcome
from liveness.family.rules import FamilyRefused, Relation

__all__ = [
    "Binding",
    "FamilyAccounts",
    "FamilyRefused",
    "ProxyCertifier",
    "ProxyOutcome",
    "ProxyRefusal",
    "Relation",
]
