locals {
  root = trim(var.root_directory, "/")
  # Every blob the driver writes starts with this ("" when the whole
  # container is used), just as the driver builds "<root_directory>/<key>".
  key_prefix    = local.root == "" ? "" : "${local.root}/"
  uploads_blobs = "${local.key_prefix}_stratus/uploads/"

  principal_id = var.create_identity ? azurerm_user_assigned_identity.registry[0].principal_id : var.principal_id
  # Role assignments take the Resource Manager id of the container.
  container_scope = "${azurerm_storage_account.this.id}/blobServices/default/containers/${azurerm_storage_container.this.name}"
}

resource "azurerm_storage_account" "this" {
  name                     = var.storage_account_name
  resource_group_name      = var.resource_group_name
  location                 = var.location
  account_kind             = "StorageV2"
  account_tier             = "Standard"
  account_replication_type = var.replication_type
  access_tier              = "Hot"

  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  shared_access_key_enabled       = var.shared_access_key_enabled
  # The provider then reaches the data plane with Entra ID, not keys.
  default_to_oauth_authentication = true

  # No blob versioning and no soft delete: GC deletes unreferenced layers
  # on purpose, and keeping them would bill each one for the retention.
  blob_properties {
    versioning_enabled = false
  }

  tags = var.tags
}

resource "azurerm_storage_container" "this" {
  name                  = var.container_name
  storage_account_id    = azurerm_storage_account.this.id
  container_access_type = "private"
}

# An upload keeps its bookkeeping (marker, tail segments) as ordinary
# blobs under _stratus/uploads/; the registry's GC deletes those of expired
# sessions, this catches what crashed replicas or lost Redis sessions
# leave. Uncommitted blocks need no rule: Azure drops them after 7 days.
resource "azurerm_storage_management_policy" "this" {
  storage_account_id = azurerm_storage_account.this.id

  rule {
    name    = "expire-abandoned-uploads"
    enabled = true

    filters {
      blob_types   = ["blockBlob"]
      prefix_match = ["${azurerm_storage_container.this.name}/${local.uploads_blobs}"]
    }

    actions {
      base_blob {
        delete_after_days_since_modification_greater_than = var.abandoned_upload_expiration_days
      }
    }
  }
}

resource "azurerm_user_assigned_identity" "registry" {
  count               = var.create_identity ? 1 : 0
  name                = coalesce(var.identity_name, "stratus-${var.storage_account_name}")
  resource_group_name = var.resource_group_name
  location            = var.location
  tags                = var.tags
}

# AKS workload identity: tokens of the Kubernetes service account
# namespace/name are exchanged for tokens of the managed identity.
resource "azurerm_federated_identity_credential" "aks" {
  count               = var.create_identity && var.aks_oidc_issuer_url != null ? 1 : 0
  name                = "aks-${var.service_account_namespace}-${var.service_account_name}"
  resource_group_name = var.resource_group_name
  parent_id           = azurerm_user_assigned_identity.registry[0].id
  issuer              = var.aks_oidc_issuer_url
  subject             = "system:serviceaccount:${var.service_account_namespace}:${var.service_account_name}"
  audience            = ["api://AzureADTokenExchange"]
}

# Read, write, delete and list blobs, and blob batch deletes, in this
# container only.
resource "azurerm_role_assignment" "blob_data" {
  scope                = local.container_scope
  role_definition_name = "Storage Blob Data Contributor"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"

  lifecycle {
    precondition {
      condition     = local.principal_id != null
      error_message = "Set principal_id when create_identity is false: someone has to be granted access."
    }
  }
}

# User-delegation SAS URLs for redirected pulls are signed with a key that
# only the account hands out.
resource "azurerm_role_assignment" "delegator" {
  count                = var.redirect ? 1 : 0
  scope                = azurerm_storage_account.this.id
  role_definition_name = "Storage Blob Delegator"
  principal_id         = local.principal_id
  principal_type       = "ServicePrincipal"
}

# What the registry needs to know about the container: the storage section
# of its configuration file (the stratus_config output). Credentials come
# from DefaultAzureCredential (workload or managed identity), so none
# appear here.
locals {
  stratus_config = {
    storage = {
      driver = "azure"
      azure = merge(
        {
          account_name = azurerm_storage_account.this.name
          container    = azurerm_storage_container.this.name
        },
        local.root == "" ? {} : { root_directory = local.root },
        var.redirect ? { redirect = true } : {},
      )
    }
  }
}
