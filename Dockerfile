# The image of examples/kubernetes/tfjob.yaml and of the Vertex AI command in
# README.md: this package, with gcsfs and s3fs for gs:// and s3:// runs, on the
# CPU TensorFlow wheel.
#   docker build -t REGISTRY/keras-googlenet:latest .
# For NVIDIA GPUs, build from the CUDA-enabled wheel instead:
#   docker build --build-arg TENSORFLOW="tensorflow[and-cuda]" -t REGISTRY/keras-googlenet:gpu .
FROM python:3.11-slim
ARG TENSORFLOW=tensorflow
COPY . /src
RUN pip install --no-cache-dir "${TENSORFLOW}" "/src[cloud]" && rm -rf /src
# Logs reach `kubectl logs` line by line.
ENV PYTHONUNBUFFERED=1
CMD ["keras-googlenet", "train", "--help"]
