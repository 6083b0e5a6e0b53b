"""vosmedia media engine: compiled RTP relay core and its Python face.

Keep this module light: it must not import the compiled extensions eagerly, so pure-Python
parts (netif, sdp) import without a build.
"""
