"""Test harness: loopback S3/GCS emulators behind a precondition-enforcing proxy.

Import :mod:`harness.fixtures` as a pytest plugin to get the ``s3_server``,
``s3_bucket``, ``gcs_server`` and ``gcs_bucket`` fixtures; :mod:`harness.proxy`
holds the proxy itself and its fault-injection rules.
"""
