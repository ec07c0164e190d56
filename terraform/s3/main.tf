data "aws_region" "current" {}

locals {
  root = trim(var.root_directory, "/")
  # Every key the driver writes starts with this ("" when the whole bucket
  # is used), just as the driver builds "<root_directory>/<key>".
  key_prefix    = local.root == "" ? "" : "${local.root}/"
  uploads_tails = "${local.key_prefix}_stratus/uploads/"

  kms      = var.kms_key_arn != null
  irsa     = var.eks_oidc_provider_arn != null
  iam_name = coalesce(var.iam_name, "stratus-${var.bucket_name}")

  # The issuer as IRSA's condition keys spell it: the provider ARN's
  # resource part, e.g. oidc.eks.eu-west-1.amazonaws.com/id/ABC123.
  oidc_issuer = local.irsa ? split("oidc-provider/", var.eks_oidc_provider_arn)[1] : ""
}

resource "aws_s3_bucket" "this" {
  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket = aws_s3_bucket.this.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# Every request must come over TLS: S3 still answers plain HTTP unless a
# bucket policy refuses it. The driver only ever uses HTTPS.
data "aws_iam_policy_document" "tls_only" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.this.arn,
      "${aws_s3_bucket.this.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "tls_only" {
  bucket = aws_s3_bucket.this.id
  policy = data.aws_iam_policy_document.tls_only.json

  # S3 refuses a bucket policy while the public access block is being
  # created ("conflicting conditional operation").
  depends_on = [aws_s3_bucket_public_access_block.this]
}

# ACLs off: every object belongs to the bucket owner whoever wrote it, and
# access is decided by IAM alone.
resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# Versioning is off by default on purpose. The registry's garbage collector
# reclaims space by deleting unreferenced layers and the driver rewrites its
# upload tail objects on every chunk; on a versioned bucket each of those
# deletes and overwrites only adds a delete marker or a noncurrent version,
# so every deleted layer would be kept (and billed) forever. Whoever wants
# versioning as an undo buffer gets it together with a rule that expires
# noncurrent versions (see the lifecycle configuration below).
#
# The resource exists only when enabled: removing it later suspends
# versioning, which is the only way back on a bucket that was versioned.
resource "aws_s3_bucket_versioning" "this" {
  count  = var.versioning_enabled ? 1 : 0
  bucket = aws_s3_bucket.this.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = local.kms ? "aws:kms" : "AES256"
      kms_master_key_id = var.kms_key_arn
    }
    # S3 Bucket Keys cut KMS requests (and their cost and throttling) by
    # orders of magnitude; they mean nothing for SSE-S3.
    bucket_key_enabled = local.kms
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  # Uploads the registry knows about are aborted by its own GC; this catches
  # those of replicas that crashed or lost their Redis session. Parts of an
  # incomplete upload are billed but invisible to listings.
  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {
      prefix = local.key_prefix
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = var.abandoned_upload_expiration_days
    }
  }

  # The driver keeps the not-yet-5-MiB tail of each upload as an object
  # under _stratus/uploads/, rewritten on every chunk. A tail older than
  # this belongs to an upload nobody will finish.
  rule {
    id     = "expire-abandoned-upload-tails"
    status = "Enabled"

    filter {
      prefix = local.uploads_tails
    }

    expiration {
      days = var.abandoned_upload_expiration_days
    }
  }

  dynamic "rule" {
    for_each = var.versioning_enabled ? [1] : []
    content {
      id     = "expire-noncurrent-versions"
      status = "Enabled"

      filter {
        prefix = local.key_prefix
      }

      noncurrent_version_expiration {
        noncurrent_days = var.noncurrent_version_expiration_days
      }

      # Once their noncurrent versions are gone, the delete markers left by
      # GC would otherwise pile up and slow listings.
      expiration {
        expired_object_delete_marker = true
      }
    }
  }

  # The provider documents that versioning must be configured first when
  # both are managed in one apply.
  depends_on = [aws_s3_bucket_versioning.this]
}

# The least the driver needs. Listing the root, a HEAD or GET that returns
# 404 rather than 403 for a missing key (S3 answers 404 only to callers
# allowed to list that key), reads, create-only and plain writes, multipart
# uploads (UploadPartCopy is a GET of the source and a PUT of the target),
# single and batch deletes, and the reaper's listing of stale uploads.
data "aws_iam_policy_document" "driver" {
  statement {
    sid       = "ListRoot"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this.arn]

    # The driver only ever lists with a prefix under the root, so a bucket
    # shared with other data stays out of reach.
    dynamic "condition" {
      for_each = local.root == "" ? [] : [1]
      content {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${local.key_prefix}*"]
      }
    }
  }

  # Not limited by prefix: S3 documents no s3:prefix condition key for
  # this action, and the reaper lists with an empty prefix when a prefixed
  # listing finds nothing (some S3-compatible servers need that). It reveals
  # the keys of in-progress uploads only; it grants nothing on them.
  statement {
    sid       = "ListMultipartUploads"
    actions   = ["s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.this.arn]
  }

  statement {
    sid = "Objects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.this.arn}/${local.key_prefix}*"]
  }

  dynamic "statement" {
    for_each = local.kms ? [1] : []
    content {
      sid = "KMS"
      # GenerateDataKey to write (and to complete multipart uploads), Decrypt
      # to read and to copy parts.
      actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
      resources = [var.kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${data.aws_region.current.name}.amazonaws.com"]
      }
    }
  }
}

resource "aws_iam_policy" "driver" {
  name        = local.iam_name
  description = "Stratus registry: access to s3://${var.bucket_name}/${local.key_prefix}"
  policy      = data.aws_iam_policy_document.driver.json
  tags        = var.tags
}

# IRSA: pods running as the given service account exchange their projected
# token for this role (the SDK's web identity provider does it by itself
# once EKS injects AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE).
data "aws_iam_policy_document" "irsa_trust" {
  count = local.irsa ? 1 : 0

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.eks_oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.service_account_namespace}:${var.service_account_name}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "irsa" {
  count = local.irsa ? 1 : 0

  name               = local.iam_name
  description        = "Stratus registry pods (${var.service_account_namespace}/${var.service_account_name})"
  assume_role_policy = data.aws_iam_policy_document.irsa_trust[0].json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "irsa" {
  count = local.irsa ? 1 : 0

  role       = aws_iam_role.irsa[0].name
  policy_arn = aws_iam_policy.driver.arn
}

# What the registry needs to know about the bucket: the storage section of
# its configuration file (the stratus_config output). Keys left out take
# the driver's defaults; credentials come from the SDK chain (IRSA, an
# instance profile), so none appear here.
locals {
  stratus_config = {
    storage = {
      driver = "s3"
      s3 = merge(
        {
          bucket = aws_s3_bucket.this.id
          region = data.aws_region.current.name
          sse    = local.kms ? "aws:kms" : "AES256"
        },
        local.root == "" ? {} : { root_directory = local.root },
        local.kms ? { kms_key_id = var.kms_key_arn } : {},
      )
    }
  }
}
