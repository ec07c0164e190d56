output "storage_account_name" {
  description = "Name of the storage account."
  value       = azurerm_storage_account.this.name
}

output "storage_account_id" {
  description = "Resource Manager id of the storage account."
  value       = azurerm_storage_account.this.id
}

output "container_name" {
  description = "Name of the blob container."
  value       = azurerm_storage_container.this.name
}

output "identity_client_id" {
  description = "Client id of the managed identity (annotate the Kubernetes service account with azure.workload.identity/client-id set to this), or null without create_identity."
  value       = one(azurerm_user_assigned_identity.registry[*].client_id)
}

output "stratus_config" {
  description = "The storage section of the Stratus configuration file for this container, as YAML: paste it into stratus.yaml."
  value       = yamlencode(local.stratus_config)
}
