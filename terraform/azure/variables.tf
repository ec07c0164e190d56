variable "resource_group_name" {
  description = "Existing resource group for the storage account (and the managed identity)."
  type        = string

  validation {
    condition     = length(var.resource_group_name) >= 1 && length(var.resource_group_name) <= 90
    error_message = "resource_group_name must be 1-90 characters."
  }
}

variable "location" {
  description = "Azure region of the storage account, e.g. westeurope; the cluster's region."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]+$", var.location))
    error_message = "location must be a region name such as westeurope (lower case, no spaces)."
  }
}

variable "storage_account_name" {
  description = "Name of the storage account (globally unique, storage.azure.account_name)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]{3,24}$", var.storage_account_name))
    error_message = "storage_account_name must be 3-24 lower-case letters and digits."
  }
}

variable "container_name" {
  description = "Name of the blob container (storage.azure.container)."
  type        = string
  default     = "registry"

  validation {
    condition     = can(regex("^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$", var.container_name))
    error_message = "container_name must be 3-63 lower-case letters, digits and single hyphens, starting and ending with a letter or digit."
  }
}

variable "root_directory" {
  description = "Blob name prefix inside the container (storage.azure.root_directory). Leading and trailing slashes are ignored, as the driver does; \"\" uses the whole container."
  type        = string
  default     = "stratus"

  validation {
    condition = trim(var.root_directory, "/") == "" || alltrue([
      for s in split("/", trim(var.root_directory, "/")) : !contains(["", ".", ".."], s)
    ])
    error_message = "root_directory must be slash-separated segments without empty, \".\" or \"..\" segments."
  }
}

variable "replication_type" {
  description = "Replication of the account. ZRS keeps the registry up through the loss of a zone; GZRS adds a second region."
  type        = string
  default     = "ZRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "GZRS", "RAGRS", "RAGZRS"], var.replication_type)
    error_message = "replication_type must be one of LRS, ZRS, GRS, GZRS, RAGRS, RAGZRS."
  }
}

variable "shared_access_key_enabled" {
  description = "Allow shared-key (account key) authentication. Off: the registry authenticates with Entra ID (workload or managed identity). Turn on only for account_key or connection_string credentials."
  type        = bool
  default     = false
}

variable "abandoned_upload_expiration_days" {
  description = "Days after which the driver's upload bookkeeping blobs (<root_directory>/_stratus/uploads/) are deleted. Must stay well above registry.upload_ttl (24h by default)."
  type        = number
  default     = 7

  validation {
    condition     = var.abandoned_upload_expiration_days >= 2
    error_message = "abandoned_upload_expiration_days must be at least 2, so a live upload is never reclaimed."
  }
}

variable "create_identity" {
  description = "Create a user-assigned managed identity for the registry. false: grant principal_id instead."
  type        = bool
  default     = true
}

variable "identity_name" {
  description = "Name of the managed identity created with create_identity. Defaults to \"stratus-<storage_account_name>\"."
  type        = string
  default     = null
}

variable "principal_id" {
  description = "Object (principal) id of an existing identity to grant access, used when create_identity is false."
  type        = string
  default     = null

  validation {
    condition     = var.principal_id == null || can(regex("^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$", var.principal_id))
    error_message = "principal_id must be a GUID."
  }
}

variable "aks_oidc_issuer_url" {
  description = "OIDC issuer URL of the AKS cluster (az aks show --query oidcIssuerProfile.issuerUrl). When set with create_identity, a federated credential lets the registry's service account use the identity (workload identity)."
  type        = string
  default     = null

  validation {
    condition     = var.aks_oidc_issuer_url == null || can(regex("^https://", var.aks_oidc_issuer_url))
    error_message = "aks_oidc_issuer_url must be an https:// URL."
  }
}

variable "service_account_namespace" {
  description = "Kubernetes namespace of the registry's service account (workload identity only)."
  type        = string
  default     = "stratus"
}

variable "service_account_name" {
  description = "Name of the registry's Kubernetes service account (workload identity only)."
  type        = string
  default     = "stratus"
}

variable "redirect" {
  description = "Set storage.azure.redirect (pulls redirected to user-delegation SAS URLs) and grant the identity Storage Blob Delegator on the account, which signing those URLs needs."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for the storage account and the identity."
  type        = map(string)
  default     = {}
}
