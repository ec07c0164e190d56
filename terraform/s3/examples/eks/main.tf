# A Stratus bucket with SSE-KMS and an IRSA role for an EKS cluster.
#
#   cd terraform/s3/examples/eks && terraform init
#   terraform apply -var bucket_name=acme-stratus-prod \
#     -var eks_oidc_provider_arn=arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLE
#   terraform output -raw stratus_config

terraform {
  required_version = ">= 1.5"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }
}

variable "region" {
  description = "AWS region of the bucket."
  type        = string
  default     = "eu-west-1"
}

variable "bucket_name" {
  description = "Globally unique bucket name."
  type        = string
}

variable "eks_oidc_provider_arn" {
  description = "The cluster's IAM OIDC provider ARN; null skips the IRSA role."
  type        = string
  default     = null
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      app = "stratus"
    }
  }
}

# Optional: drop this key and kms_key_arn below for SSE-S3, which costs
# nothing per request.
resource "aws_kms_key" "stratus" {
  description         = "Stratus registry blobs in ${var.bucket_name}"
  enable_key_rotation = true
}

module "stratus_s3" {
  source = "../.."

  bucket_name    = var.bucket_name
  root_directory = "stratus"
  kms_key_arn    = aws_kms_key.stratus.arn

  eks_oidc_provider_arn     = var.eks_oidc_provider_arn
  service_account_namespace = "stratus"
  service_account_name      = "stratus"
}

output "stratus_config" {
  description = "Paste into the Stratus configuration file (with the redis section)."
  value       = module.stratus_s3.stratus_config
}

output "role_arn" {
  description = "Annotate the registry's service account with eks.amazonaws.com/role-arn set to this."
  value       = module.stratus_s3.role_arn
}

output "policy_arn" {
  description = "Attach to the registry's identity when IRSA is not used."
  value       = module.stratus_s3.policy_arn
}
