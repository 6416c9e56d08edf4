"""The GenSynth engine: search space, generator, inquisitor, objective. Imports no NNI and no torch."""
from .gensynth import CycleStats, GenSynth
from .generator import Generator, GeneratorDelta
from .inquisitor import Inquisitor, Record
from .objective import Objective, Requirements, netscore, netscore_hw
from .space import Architecture, SearchSpace, SearchSpaceError

__all__ = ["Architecture", "CycleStats", "GenSynth", "Generator", "GeneratorDelta", "Inquisitor",
           "Objective", "Record", "Requirements", "SearchSpace", "SearchSpaceError", "netscore", "netscore_hw"]
