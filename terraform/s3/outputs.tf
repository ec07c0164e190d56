output "bucket_name" {
  description = "Name of the bucket."
  value       = aws_s3_bucket.this.id
}

output "bucket_arn" {
  description = "ARN of the bucket."
  value       = aws_s3_bucket.this.arn
}

output "policy_arn" {
  description = "ARN of the IAM policy the registry needs; attach it to whatever identity runs the registry when IRSA is not used."
  value       = aws_iam_policy.driver.arn
}

output "role_arn" {
  description = "ARN of the IRSA role (annotate the service account with eks.amazonaws.com/role-arn), or null without eks_oidc_provider_arn."
  value       = one(aws_iam_role.irsa[*].arn)
}

output "stratus_config" {
  description = "The storage section of the Stratus configuration file for this bucket, as YAML: paste it into stratus.yaml."
  value       = yamlencode(local.stratus_config)
}
