"""The original design's usage example, as written (only the import paths differ).

Configure it with environment variables, for example:

    ETL_MANIFESTS_MANIFESTS_DIR=s3://my-bucket/manifests ETL_MANIFESTS_VERSION=1.0.0 \
        python docs/examples/seed_usage.py
"""

from pathlib import Path
from etl_manifests.manager import ManifestManager
from etl_manifests.config import ETLConfig

# 1. Initialize configuration and manager
config = ETLConfig()
manifest_manager = ManifestManager(
    root_dir=config.get_manifests_dir(),
    etl_version=config.version
)

# 2. Get the manifest for the 'extractor' process
# This will create/load 'extractor_v1.0.0.json'
extractor_manifest = manifest_manager.extractor

# 3. Add a new record (data would typically come from a DownloadEvent)
new_record_data = {
    "checksum": "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2",
    "filename": "some_file.gz",
    "filepath": Path("/path/to/etl/data/downloads/some_file.gz"),
    "etag": "xyz-etag",
    "content_length_bytes": 12345
}
extractor_manifest.add_record(new_record_data)

# The manifest is now automatically saved to disk.
