variable "bucket_name" {
  description = "Name of the S3 bucket that holds the registry's blobs and manifests."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens."
  }
}

variable "root_directory" {
  description = "Key prefix inside the bucket (storage.s3.root_directory). Leading and trailing slashes are ignored, as the driver does; \"\" uses the whole bucket."
  type        = string
  default     = "stratus"

  validation {
    # Mirrors the driver's own check, so a bad value fails at plan time
    # rather than when the registry starts.
    condition = trim(var.root_directory, "/") == "" || alltrue([
      for s in split("/", trim(var.root_directory, "/")) : !contains(["", ".", ".."], s)
    ])
    error_message = "root_directory must be slash-separated segments without empty, \".\" or \"..\" segments."
  }
}

variable "kms_key_arn" {
  description = "ARN of a customer-managed KMS key for SSE-KMS. null means SSE-S3 (AES256)."
  type        = string
  default     = null

  validation {
    # A key ARN, not an alias or a bare key id: the IAM policy grants use
    # of exactly this resource.
    condition     = var.kms_key_arn == null || can(regex("^arn:[^:]+:kms:[^:]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn must be a KMS key ARN: arn:aws:kms:<region>:<account>:key/<id>."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a non-empty bucket. Leave false for anything holding real images."
  type        = bool
  default     = false
}

variable "versioning_enabled" {
  description = "Enable bucket versioning. Off by default: see the comment on aws_s3_bucket_versioning in main.tf."
  type        = bool
  default     = false
}

variable "noncurrent_version_expiration_days" {
  description = "With versioning_enabled, days after which overwritten or deleted object versions are removed for good."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "abandoned_upload_expiration_days" {
  description = "Days after which incomplete multipart uploads are aborted and the driver's upload tail objects expire. Must stay well above registry.upload_ttl (24h by default)."
  type        = number
  default     = 7

  validation {
    condition     = var.abandoned_upload_expiration_days >= 2
    error_message = "abandoned_upload_expiration_days must be at least 2, so a live upload is never reclaimed."
  }
}

variable "iam_name" {
  description = "Name of the IAM policy (and IRSA role). Defaults to \"stratus-<bucket_name>\"."
  type        = string
  default     = null
}

variable "eks_oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider. When set, an IRSA role for the registry's service account is created."
  type        = string
  default     = null

  validation {
    condition     = var.eks_oidc_provider_arn == null || can(regex("^arn:[^:]+:iam::[0-9]{12}:oidc-provider/.+$", var.eks_oidc_provider_arn))
    error_message = "eks_oidc_provider_arn must look like arn:aws:iam::<account>:oidc-provider/<issuer host and path>."
  }
}

variable "service_account_namespace" {
  description = "Kubernetes namespace of the registry's service account (IRSA only)."
  type        = string
  default     = "stratus"
}

variable "service_account_name" {
  description = "Name of the registry's Kubernetes service account (IRSA only)."
  type        = string
  default     = "stratus"
}

variable "tags" {
  description = "Tags applied to every resource that takes them."
  type        = map(string)
  default     = {}
}
