variable "project_id" {
  description = "Google Cloud project that holds the bucket and the service account."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a project ID (6-30 lower-case letters, digits and hyphens), not a project number or name."
  }
}

variable "bucket_name" {
  description = "Name of the GCS bucket that holds the registry's blobs and manifests (globally unique)."
  type        = string

  validation {
    # Dots would make the name a domain that GCS wants verified.
    condition     = can(regex("^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$", var.bucket_name)) && !startswith(var.bucket_name, "goog")
    error_message = "bucket_name must be 3-63 lower-case letters, digits, hyphens and underscores, must not start with \"goog\" and may not contain dots."
  }
}

variable "location" {
  description = "Bucket location: a region (\"europe-west1\"), a dual-region or a multi-region (\"EU\"). Keep it where the cluster runs; cross-region reads are billed."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9-]+$", var.location))
    error_message = "location must be a GCS location such as europe-west1, EU or NAM4."
  }
}

variable "root_directory" {
  description = "Key prefix inside the bucket (storage.gcs.root_directory). Leading and trailing slashes are ignored, as the driver does; \"\" uses the whole bucket."
  type        = string
  default     = "stratus"

  validation {
    condition = trim(var.root_directory, "/") == "" || alltrue([
      for s in split("/", trim(var.root_directory, "/")) : !contains(["", ".", ".."], s)
    ])
    error_message = "root_directory must be slash-separated segments without empty, \".\" or \"..\" segments."
  }
}

variable "storage_class" {
  description = "Default storage class of new objects."
  type        = string
  default     = "STANDARD"

  validation {
    # Colder classes bill a minimum storage duration for every layer GC
    # deletes early, and retrieval for every pull.
    condition     = contains(["STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE"], var.storage_class)
    error_message = "storage_class must be STANDARD, NEARLINE, COLDLINE or ARCHIVE."
  }
}

variable "kms_key_name" {
  description = "Cloud KMS key for the bucket's default encryption (projects/P/locations/L/keyRings/R/cryptoKeys/K), also written to storage.gcs.kms_key_name. null means Google-managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_name == null || can(regex("^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$", var.kms_key_name))
    error_message = "kms_key_name must be projects/P/locations/L/keyRings/R/cryptoKeys/K."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a non-empty bucket. Leave false for anything holding real images."
  type        = bool
  default     = false
}

variable "soft_delete_retention_days" {
  description = "Days GCS keeps deleted objects restorable (and billed). 0 turns soft delete off: GC deletes unreferenced layers on purpose, and keeping them would bill every deleted layer for this long."
  type        = number
  default     = 0

  validation {
    # GCS accepts 0 or 7 to 90 days.
    condition     = var.soft_delete_retention_days == 0 || (var.soft_delete_retention_days >= 7 && var.soft_delete_retention_days <= 90)
    error_message = "soft_delete_retention_days must be 0 or between 7 and 90."
  }
}

variable "abandoned_upload_expiration_days" {
  description = "Days after which the driver's upload part objects (<root_directory>/_stratus/uploads/) and incomplete XML multipart uploads are deleted. Must stay well above registry.upload_ttl (24h by default)."
  type        = number
  default     = 7

  validation {
    condition     = var.abandoned_upload_expiration_days >= 2
    error_message = "abandoned_upload_expiration_days must be at least 2, so a live upload is never reclaimed."
  }
}

variable "service_account_id" {
  description = "Account id of the Google service account the registry runs as (the part before @). Defaults to \"stratus-registry\"."
  type        = string
  default     = "stratus-registry"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.service_account_id))
    error_message = "service_account_id must be 6-30 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "workload_identity" {
  description = "Bind the service account to a Kubernetes service account through GKE workload identity (the cluster must have it enabled, pool <project_id>.svc.id.goog)."
  type        = bool
  default     = true
}

variable "workload_identity_project" {
  description = "Project of the GKE cluster's workload identity pool, when it is not project_id."
  type        = string
  default     = null
}

variable "service_account_namespace" {
  description = "Kubernetes namespace of the registry's service account (workload identity only)."
  type        = string
  default     = "stratus"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.service_account_namespace))
    error_message = "service_account_namespace must be a Kubernetes namespace name."
  }
}

variable "service_account_name" {
  description = "Name of the registry's Kubernetes service account (workload identity only)."
  type        = string
  default     = "stratus"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.service_account_name))
    error_message = "service_account_name must be a Kubernetes object name."
  }
}

variable "redirect" {
  description = "Set storage.gcs.redirect (pulls redirected to V4 signed URLs) and let the service account sign blobs as itself, which key-less workload identity needs for signing."
  type        = bool
  default     = false
}

variable "labels" {
  description = "Labels for the bucket."
  type        = map(string)
  default     = {}
}
