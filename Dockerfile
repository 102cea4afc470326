# A serving image for one exported model bundle (see README, "Docker"):
#   tlcore export RUN_DIR --format bundle --out model.zip
#   docker build -t my-classifier --build-arg BUNDLE=model.zip .
#   docker run -p 8000:8000 [-e TLCORE_TOKEN=...] my-classifier
# Only what serving needs is installed (TensorFlow CPU, Keras, Pillow, FastAPI, uvicorn), at the
# versions pinned in requirements.txt; the studio (Streamlit) is left out.
FROM python:3.11-slim

ARG BUNDLE=model.zip
WORKDIR /app
COPY requirements.txt pyproject.toml ./
COPY tlcore ./tlcore
RUN grep -iE '^(tensorflow-cpu|keras|numpy|pillow|fastapi|uvicorn|python-multipart)==' requirements.txt \
        > serve-requirements.txt \
    && pip install --no-cache-dir -r serve-requirements.txt \
    && pip install --no-cache-dir --no-deps . \
    && useradd --create-home --uid 10001 serve
COPY ${BUNDLE} /model/model.zip

USER serve
ENV TLCORE_HOME=/home/serve/.tlcore TF_CPP_MIN_LOG_LEVEL=2
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
# tlcore serve reads the token from TLCORE_TOKEN itself: it never appears on the command line.
CMD ["tlcore", "serve", "/model/model.zip", "--host", "0.0.0.0", "--port", "8000"]
