# A Caravan node image (trust services today; the ledger node joins it in later issues).
FROM python:3.11-slim-bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY chaincode ./chaincode
COPY trust_services ./trust_services
COPY node ./node
COPY api ./api
COPY cli ./cli
RUN pip install --no-cache-dir . && useradd --uid 10001 --create-home caravan
USER caravan
ENTRYPOINT ["caravan"]
