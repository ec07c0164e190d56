locals {
  root = trim(var.root_directory, "/")
  # Every key the driver writes starts with this ("" when the whole bucket
  # is used), just as the driver builds "<root_directory>/<key>".
  key_prefix    = local.root == "" ? "" : "${local.root}/"
  uploads_parts = "${local.key_prefix}_stratus/uploads/"

  wi_pool = "${coalesce(var.workload_identity_project, var.project_id)}.svc.id.goog"
}

resource "google_storage_bucket" "this" {
  project       = var.project_id
  name          = var.bucket_name
  location      = var.location
  storage_class = var.storage_class
  force_destroy = var.force_destroy
  labels        = var.labels

  # IAM alone decides access: no object ACLs, and never public.
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"

  # Versioning stays off: GC frees space by deleting unreferenced layers,
  # and on a versioned bucket each delete would keep a billed noncurrent
  # version.
  versioning {
    enabled = false
  }

  soft_delete_policy {
    retention_duration_seconds = var.soft_delete_retention_days * 86400
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }

  # A resumable upload is a series of part objects under _stratus/uploads/,
  # composed on commit. The registry's GC deletes those of expired
  # sessions; this catches what a crashed replica or a lost Redis session
  # leaves behind.
  lifecycle_rule {
    condition {
      age            = var.abandoned_upload_expiration_days
      matches_prefix = [local.uploads_parts]
    }
    action {
      type = "Delete"
    }
  }

  # The driver uses the JSON API and never starts XML multipart uploads;
  # this keeps any that another tool started from being billed forever.
  lifecycle_rule {
    condition {
      age = var.abandoned_upload_expiration_days
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_kms_crypto_key_iam_member.gcs_agent]
}

# With a customer-managed key, the project's Cloud Storage service agent
# encrypts and decrypts on the registry's behalf.
data "google_storage_project_service_account" "agent" {
  count   = var.kms_key_name == null ? 0 : 1
  project = var.project_id
}

resource "google_kms_crypto_key_iam_member" "gcs_agent" {
  count         = var.kms_key_name == null ? 0 : 1
  crypto_key_id = var.kms_key_name
  role          = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
  member        = data.google_storage_project_service_account.agent[0].member
}

resource "google_service_account" "registry" {
  project      = var.project_id
  account_id   = var.service_account_id
  display_name = "Stratus registry (${var.bucket_name})"
}

# Objects only, this bucket only: create, read, list, overwrite and delete,
# and compose (create plus read). Nothing on bucket metadata or IAM.
resource "google_storage_bucket_iam_member" "registry" {
  bucket = google_storage_bucket.this.name
  role   = "roles/storage.objectAdmin"
  member = google_service_account.registry.member
}

# GKE workload identity: pods running as the Kubernetes service account
# namespace/name get tokens of the Google service account.
resource "google_service_account_iam_member" "workload_identity" {
  count              = var.workload_identity ? 1 : 0
  service_account_id = google_service_account.registry.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${local.wi_pool}[${var.service_account_namespace}/${var.service_account_name}]"
}

# Signed URLs without a key file: the driver asks the IAM credentials API
# to sign as the service account itself (iam.serviceAccounts.signBlob).
resource "google_service_account_iam_member" "sign_blob" {
  count              = var.redirect ? 1 : 0
  service_account_id = google_service_account.registry.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = google_service_account.registry.member
}

# What the registry needs to know about the bucket: the storage section of
# its configuration file (the stratus_config output). Credentials come
# from the metadata server (workload identity), so none appear here.
locals {
  stratus_config = {
    storage = {
      driver = "gcs"
      gcs = merge(
        { bucket = google_storage_bucket.this.name },
        local.root == "" ? {} : { root_directory = local.root },
        var.kms_key_name == null ? {} : { kms_key_name = var.kms_key_name },
        var.redirect ? { redirect = true } : {},
      )
    }
  }
}
