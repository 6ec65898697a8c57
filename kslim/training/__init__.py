"""Training the papers' way: the SGD schedule (`Recipe`) and SGD with coupled weight decay."""

from kslim.training import recipe as recipe
from kslim.training.coupled_sgd import CoupledSGD as CoupledSGD
from kslim.training.recipe import Recipe as Recipe

__all__ = ["recipe", "CoupledSGD", "Recipe"]
