"""Running a checkpoint or an export: predictions, verification against Keras, Grad-CAM.

Takes in any exported form of a GoogLeNet and images; gives out each image's top
classes, each export's parity with Keras, and heatmaps. Open ``runtimes.py``
first (one loader per format), then ``predict.py``.
"""

from keras_googlenet import _lazy

__getattr__, __dir__ = _lazy.attach(__name__, __path__, {})
