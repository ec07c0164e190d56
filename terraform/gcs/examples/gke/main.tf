# A Stratus bucket in GCS, a service account with access to it, and the
# workload identity binding for the registry's pods on GKE.
#
#   cd terraform/gcs/examples/gke && terraform init
#   terraform apply -var project_id=acme-prod -var bucket_name=acme-stratus-prod
#   terraform output -raw stratus_config

terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0, < 7.0"
    }
  }
}

variable "project_id" {
  description = "Project of the bucket and of the GKE cluster."
  type        = string
}

variable "bucket_name" {
  description = "Globally unique bucket name."
  type        = string
}

variable "region" {
  description = "Region of the bucket; the cluster's region."
  type        = string
  default     = "europe-west1"
}

provider "google" {
  project = var.project_id
  region  = var.region
}

module "stratus_gcs" {
  source = "../.."

  project_id     = var.project_id
  bucket_name    = var.bucket_name
  location       = var.region
  root_directory = "stratus"

  service_account_namespace = "stratus"
  service_account_name      = "stratus"

  labels = {
    app = "stratus"
  }
}

output "stratus_config" {
  description = "Paste into k8s/overlays/gcs/stratus.yaml (storage section)."
  value       = module.stratus_gcs.stratus_config
}

output "service_account_email" {
  description = "Set as iam.gke.io/gcp-service-account in k8s/overlays/gcs/kustomization.yaml."
  value       = module.stratus_gcs.service_account_email
}
