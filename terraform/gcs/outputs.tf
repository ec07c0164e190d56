output "bucket_name" {
  description = "Name of the bucket."
  value       = google_storage_bucket.this.name
}

output "bucket_url" {
  description = "gs:// URL of the bucket."
  value       = google_storage_bucket.this.url
}

output "service_account_email" {
  description = "Email of the registry's Google service account: annotate the Kubernetes service account with iam.gke.io/gcp-service-account set to this."
  value       = google_service_account.registry.email
}

output "stratus_config" {
  description = "The storage section of the Stratus configuration file for this bucket, as YAML: paste it into stratus.yaml."
  value       = yamlencode(local.stratus_config)
}
