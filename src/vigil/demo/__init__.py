"""The README's demo: the seed's setup on this machine, scene by scene."""
