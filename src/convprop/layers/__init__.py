"""Modules: objects that own parameters and delegate to one kernel pair each."""

from .module import Module, Parameter

__all__ = ["Module", "Parameter"]
