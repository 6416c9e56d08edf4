"""The GenSynth engine: search space, generator, inquisitor, objective. Imports no NNI and no torch."""
from .front import Objectives, parse_objectives
from .gensynth import CycleStats, GenSynth
from .generator import Generator, GeneratorDelta
from .hypervolume import hypervolume
from .inquisitor import Inquisitor, Record
from .metrics import clean_metrics, parse_responses
from .objective import Objective, Requirements, netscore, netscore_hw
from .space import Architecture, SearchSpace, SearchSpaceError
from .state import StateError, load_state_file, save_state_file

__all__ = ["Architecture", "CycleStats", "GenSynth", "Generator", "GeneratorDelta", "Inquisitor",
           "Objective", "Objectives", "Record", "Requirements", "SearchSpace", "SearchSpaceError", "StateError",
           "clean_metrics", "hypervolume", "load_state_file", "netscore", "netscore_hw", "parse_objectives",
           "parse_responses", "save_state_file"]
