"""Real-time hosting: a worker process per variant instance behind the inference contract
(``GET /ping``, ``POST /invocations``), the variant router, and the async client the
runtime API forwards requests with."""
